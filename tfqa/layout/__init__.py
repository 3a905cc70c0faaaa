"""What is on disk: the file system (fs, the one module that touches files), run and export directories, checkpoints, digests."""
