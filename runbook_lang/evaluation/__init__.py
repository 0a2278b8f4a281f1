"""Values, expressions, builtins, params and secret masking."""
