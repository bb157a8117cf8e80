// torchts_preload.node: loads the user's libtorch libraries by full path before a portable
// (prebuilt) torchts.node is required. The prebuilt binary records libtorch by soname only, and
// the dynamic linker resolves a soname to a library already loaded under that name, so no
// LD_LIBRARY_PATH or RPATH is needed. Plain C and libdl: it must load on any libtorch or none.
#include <dlfcn.h>
#include <node_api.h>
#include <stdlib.h>

#define MAX_PATH_BYTES 4096

// preload(paths: string[]): null when every library loaded, else "<path>: <dlerror>" for the first
// that did not. Libraries stay loaded for the life of the process, as the addon needs them.
static napi_value Preload(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value result;
  bool isArray = false;
  uint32_t count = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_is_array(env, argv[0], &isArray) != napi_ok || !isArray) {
    napi_throw_type_error(env, NULL, "preload(paths): paths must be an array of library paths");
    return NULL;
  }
  napi_get_array_length(env, argv[0], &count);
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    char path[MAX_PATH_BYTES];
    size_t length = 0;
    napi_get_element(env, argv[0], i, &item);
    if (napi_get_value_string_utf8(env, item, path, sizeof path, &length) != napi_ok ||
        length + 1 >= sizeof path) {
      napi_throw_type_error(env, NULL, "preload(paths): each path must be a string under 4096 bytes");
      return NULL;
    }
    if (dlopen(path, RTLD_NOW | RTLD_GLOBAL) == NULL) {
      const char* why = dlerror();
      napi_create_string_utf8(env, why ? why : path, NAPI_AUTO_LENGTH, &result);
      return result;
    }
  }
  napi_get_null(env, &result);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "preload", NAPI_AUTO_LENGTH, Preload, NULL, &fn);
  napi_set_named_property(env, exports, "preload", fn);
  return exports;
}

NAPI_MODULE(torchts_preload, Init)
