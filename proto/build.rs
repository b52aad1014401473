//! Compiles `liaison/v1/*.proto` with protox, a protobuf compiler written in
//! Rust, so a fresh machine needs nothing but cargo to build Liaison.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["liaison/v1/federation.proto", "liaison/v1/admin.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // The descriptor set is also served by gRPC server reflection.
    let descriptor_path = out_dir.join("liaison_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        // Prost's codec with smaller initial buffers (`liaison_proto::Codec`).
        .codec_path("crate::Codec")
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
