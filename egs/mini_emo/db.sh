# Where corpora live. mini_emo is synthesised by stage 1 into this directory.
MINI_EMO=${MINI_EMO:-downloads/mini_emo}
