"""The language's front end: source text, parser, AST, modules."""
