"""mlstack backend for Azure Machine Learning."""
