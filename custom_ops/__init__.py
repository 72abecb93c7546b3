"""Build code for the C++/CUDA op libraries (used by setup.py; not installed)."""
