# Where corpora live. RAVDESS (Zenodo record 1188976, CC BY-NC-SA 4.0) must be downloaded by
# hand: point RAVDESS at the directory holding Actor_01 ... Actor_24 (the speech part,
# Audio_Speech_Actors_01-24), or pass --ravdess_root.
RAVDESS=${RAVDESS:-downloads/RAVDESS}
