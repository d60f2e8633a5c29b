// int8_dot4_packed.wgsl — `idot4` by the WGSL builtin dot4I8Packed (language extension
// packed_4x8_integer_dot_product: SPIR-V OpSDot where the Vulkan device has integer dot products,
// naga's exact polyfill elsewhere; `navigator.gpu.wgslLanguageFeatures` in browsers). Prepended to
// shaders/matmul_int8_dot4.wgsl (a `requires` directive must precede every declaration); the other
// variant is shaders/int8_dot4_unpacked.wgsl. No bindings, no override constants.
// CPU twin: `quantlab::gpu::int8_dot4::idot4`.
requires packed_4x8_integer_dot_product;

// Σ_j a_j·b_j over the four signed bytes of each word, exact in i32.
fn idot4(a: u32, b: u32) -> i32 {
    return dot4I8Packed(a, b);
}
