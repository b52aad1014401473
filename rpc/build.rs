//! Generates the `liaison.v1` services' clients and servers with tonic,
//! over the messages `liaison-proto` generates (`extern_path`), from the same
//! `.proto` files, compiled by protox (no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "../proto";
    let files = ["liaison/v1/federation.proto", "liaison/v1/admin.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={dir}/{file}");
    }
    let descriptors = protox::compile(files, [dir])?;
    tonic_prost_build::configure()
        .extern_path(".liaison.v1", "::liaison_proto::v1")
        // Prost's codec with smaller initial buffers (`liaison_rpc::Codec`).
        .codec_path("crate::Codec")
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
