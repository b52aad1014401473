//! Compiles `liaison/v1/*.proto` with protox, a protobuf compiler written in
//! Rust, so a fresh machine needs nothing but cargo to build Liaison. This
//! crate holds the messages only (prost); the services' clients and servers
//! are generated in `liaison-rpc`, so that the protocol core can use the
//! messages without linking tonic.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["liaison/v1/federation.proto", "liaison/v1/admin.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // The descriptor set is also served by gRPC server reflection.
    std::fs::write(
        out_dir.join("liaison_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
