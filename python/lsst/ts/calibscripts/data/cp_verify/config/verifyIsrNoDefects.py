# Task configuration override for the ISR step of the cp_verify pipelines:
# do not mask defects. Use as: -C verifyBiasIsr:$CP_VERIFY_DIR/config/verifyIsrNoDefects.py
config.doDefect = False
