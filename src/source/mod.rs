//! Sources: where exchanges come from. The only place (with `store`, `web` and the
//! CLI) that does I/O.
//!
//! INTERFACE STUB — to be implemented (see the HAR work item).
