# Task configuration override for the ISR step of the cp_pipe pipelines:
# do not mask defects (for the first calibrations of a camera, before any
# defects are certified). Use as: -C isr:$CP_PIPE_DIR/config/isrNoDefects.py
config.doDefect = False
