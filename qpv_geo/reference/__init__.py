"""The reference data: layers and their manifest, install and store, communes, territories,
the national layer."""
