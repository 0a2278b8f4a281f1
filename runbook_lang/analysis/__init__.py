"""Static checks: names, types, references and warnings."""
