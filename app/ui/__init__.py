"""The Qt window: one module per panel, a thin main window, and the training worker bridge.

Nothing here imports torch; the engine (``app.core``) does, inside worker threads.
"""
