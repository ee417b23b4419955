"""The DLI API as the exporter uses it: its paths, the request path, one module per resource."""
