// `embed_migrations!` reads the migration directories at compile time; without this a new
// migration directory would not rebuild the crate (diesel_migrations' documented advice).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
