//! Parser for the test-vector files in `tests/vectors/` (docs/FORMAT.md §9).
