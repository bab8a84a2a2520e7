# Fault tests (included by the top Makefile.am): killed and stopped
# children, a full disk, hostile clients.
FAULT_TESTS = \
	tests/integration/test_faults.py \
	tests/integration/test_hostile.py
EXTRA_DIST += $(FAULT_TESTS)
