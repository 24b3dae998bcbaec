# Where corpora live. Neither can be downloaded by script: IEMOCAP is licensed by USC SAIL
# (point IEMOCAP at the directory holding Session1 ... Session5, or pass --iemocap_root);
# PA-IEMOCAP is the two files ocean.csv and tipi_labels.csv (point PA_IEMOCAP at the
# directory holding them, or pass --pa_iemocap_root).
IEMOCAP=${IEMOCAP:-downloads/IEMOCAP_full_release}
PA_IEMOCAP=${PA_IEMOCAP:-downloads/PA-IEMOCAP}
