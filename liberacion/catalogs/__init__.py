"""Catalogs: the manifests (``manifests``), the datasets they describe (``model``), the listings
HHS publishes read into datasets (``adapters``) and the local index ``discover`` builds (``index``)."""
