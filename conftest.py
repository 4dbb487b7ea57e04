"""Root pytest settings, loaded for both the unit tests and the nbval notebook runs.

Notebook kernels started by nbval inherit this process's environment, so quick CPU mode is
switched on here, before any kernel starts. Export FTP_POSE_QUICK=0 to test full mode.
"""
import os

os.environ.setdefault("FTP_POSE_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(config, items):
    """Run the browser test last: by then the quick-training test has cached the checkpoint it uses."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
