"""mlstack's Amazon SageMaker backend. The descriptor is in ``plugin``; the rest loads on use."""
