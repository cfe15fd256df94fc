//! The backend conformance story, each story on a fresh database.

use crate::util::fresh_store;

legato_store::conformance_tests!(fresh_store());
