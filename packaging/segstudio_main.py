"""Entry point of the bundled executable: the ``segstudio`` command, window included."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()  # DataLoader workers re-enter here on Windows and macOS
    from app.launch import main

    raise SystemExit(main())
