"""Shared test settings: figures render off screen (Agg), whatever display pytest-xvfb or napari's plugins set up."""
import os

os.environ.setdefault('MPLBACKEND', 'Agg')
