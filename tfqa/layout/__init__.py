"""Where tfqa keeps things on disk: the file system (fs); later the run and export directory layouts."""
