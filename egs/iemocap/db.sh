# Where corpora live. IEMOCAP cannot be downloaded by script (it is licensed by USC SAIL):
# point IEMOCAP at the directory holding Session1 ... Session5, or pass --iemocap_root.
IEMOCAP=${IEMOCAP:-downloads/IEMOCAP_full_release}
