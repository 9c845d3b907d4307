"""System tests: the whole hub run as `isthmus serve` processes (real sockets, kill -9,
scale-out faults), the one folder of tests/ that does not mirror a package of src/isthmus."""
