{
  # node-gyp / electron-rebuild / prebuildify build of the same sources as CMakeLists.txt
  # (native/sources.json), linked by hand against the libtorch recorded in build-config/torch.json.
  "targets": [
    {
      "target_name": "lethe",
      "sources": ["<!@(node -p \"require('./native/sources.json').sources.join(' ')\")"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "<!@(node -p \"require('./build-config/torch.json').includeDirs.join(' ')\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "_GLIBCXX_USE_CXX11_ABI=<!(node -p \"require('./build-config/torch.json').cxx11abi\")",
        "<!(node -p \"require('./build-config/torch.json').cudaLibs.length ? 'LETHE_WITH_CUDA=1' : 'LETHE_WITHOUT_CUDA=1'\")"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-fvisibility=hidden", "-Wno-unused-parameter"],
      "libraries": [
        "-L<!(node -p \"require('./build-config/torch.json').libDir\")",
        "-lc10", "-ltorch_cpu", "-ltorch",
        "<!@(node -p \"require('./build-config/torch.json').cudaLibs.length ? '-Wl,--no-as-needed -lc10_cuda -ltorch_cuda -Wl,--as-needed' : ''\")",
        "-Wl,--disable-new-dtags,-rpath,<!(node -p \"require('./build-config/torch.json').libDir\")"
      ]
    }
  ]
}
