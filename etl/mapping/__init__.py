"""Structure-name mapping: TG-263 names and the centres' versioned rules."""

__all__: list[str] = []
