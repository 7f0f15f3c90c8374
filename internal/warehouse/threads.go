package warehouse

// ThreadsFor returns the default warehouse thread count (DuckDB's threads,
// config warehouse.threads) on a machine with ncpu CPUs: max(1, ncpu-1).
// DuckDB's threads setting counts the thread that calls into it, and that
// caller takes part in every query; the core also runs the intake, the
// uploader's decoding and the edges' work on the same CPUs. N-1 threads
// (the caller plus N-2 workers) leave one CPU for the rest. On two CPUs
// this means no worker at all: with a worker, the calling thread spins in
// DuckDB's task loop while the worker runs a statement's only task, taking
// the CPU the intake and the decoder need (bench/warehouse.md, "Offsets,
// and DuckDB's threads for the writer"). A machine with 8 CPUs gets 7,
// more query parallelism than the fixed 2 this replaces. It lives here,
// not in the DuckDB driver, so that config (which must not link cgo)
// shows the same default.
func ThreadsFor(ncpu int) int { return max(1, ncpu-1) }
