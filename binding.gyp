# CPU build with node-gyp (what `npm install` runs). The source list and compiler flags live
# in native/sources.gypi, which CMakeLists.txt reads too.
{
  "includes": ["native/sources.gypi"],
  "targets": [
    {
      "target_name": "saekit",
      "sources": [
        "<@(saekit_core_sources)",
        "<@(saekit_binding_sources)"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["<@(saekit_cflags)"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "gnu++17",
        "OTHER_CFLAGS": ["<@(saekit_cflags)"]
      }
    }
  ]
}
