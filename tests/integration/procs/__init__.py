"""Worker processes and the App they run, for test_processes.py."""
