//! The conformance stories with chunk bytes in SeaweedFS: the catalog's (on SQLite and on
//! FerretDB, across the two contracts), and the blob contract's on the bucket alone.

mod on_sqlite {
    use crate::util::fresh_on_sqlite;
    legato_store::conformance_tests!(fresh_on_sqlite());
}

mod on_mongo {
    use crate::util::fresh_on_mongo;
    legato_store::conformance_tests!(fresh_on_mongo());
}

mod blobs {
    use std::sync::Arc;

    use legato_store::{Blobs, DynStore};

    use crate::util::test_bucket;

    legato_store::blob_conformance_tests!(async {
        let bucket: Arc<dyn Blobs> = Arc::new(test_bucket("blobs"));
        (bucket, None::<DynStore>)
    });
}
