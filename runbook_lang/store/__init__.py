"""Where runs live: transcripts, decisions and locks."""
