"""Colour hints, in one package: the file format (file.py), hints as network input
(planes.py), reference photos (reference.py), the tracker that carries hints through time
(tracker.py; backward.py carries them back to their shot's start), hints on one photo
(photo.py) and a live session's hints (live.py)."""
