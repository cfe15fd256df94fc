//! The backend conformance story with chunk bytes in SeaweedFS, on SQLite and on FerretDB.

mod on_sqlite {
    use crate::util::fresh_on_sqlite;
    legato_store::conformance_tests!(fresh_on_sqlite());
}

mod on_mongo {
    use crate::util::fresh_on_mongo;
    legato_store::conformance_tests!(fresh_on_mongo());
}
