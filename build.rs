//! Rebuild when the admin panel's build output changes. rust-embed tracks the
//! files it embedded, but not files added under new (hashed) names, so the
//! whole folder is watched here.
fn main() {
    println!("cargo:rerun-if-changed=admin-ui/dist");
}
