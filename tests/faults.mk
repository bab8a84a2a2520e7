# Fault tests (included by the top Makefile.am): killed and stopped
# children, a full disk, hostile clients, snapshots under load.  Under
# make -j they wait for the other integration tests running at the time
# (see wait_turn in test_faults.py): they load the machine.
FAULT_TESTS = \
	tests/integration/test_faults.py \
	tests/integration/test_hostile.py \
	tests/integration/test_snapshots.py
EXTRA_DIST += $(FAULT_TESTS)
