//! The conformance stories, each on a fresh database: the catalog's, and the blob contract's
//! over the `chunks` collection.

mod catalog {
    use crate::util::fresh_store;

    legato_store::conformance_tests!(fresh_store());
}

mod blobs {
    use crate::util::fresh_store;

    legato_store::blob_conformance_tests!(async {
        let store = fresh_store().await;
        (store.blobs().clone(), Some(store))
    });
}
