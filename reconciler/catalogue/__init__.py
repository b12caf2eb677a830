"""The endpoint catalogue: load and validate the versioned YAML data in `config/catalogue/`."""

from reconciler.catalogue.load import (
    CatalogueStore,
    default_catalogue_dir,
    load_catalogue,
)

__all__ = ["CatalogueStore", "default_catalogue_dir", "load_catalogue"]
