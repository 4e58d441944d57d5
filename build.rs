// The web client is embedded from web/dist: rebuild when its contents change.
fn main() {
    println!("cargo:rerun-if-changed=web/dist");
    println!("cargo:rerun-if-changed=migrations");
}
