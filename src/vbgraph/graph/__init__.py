"""Graph descriptions: loading YAML graph files and checking them."""

__all__: list[str] = []
