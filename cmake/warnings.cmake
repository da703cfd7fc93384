# Warnings for every project target; sanitizers as a build option.
add_library(pgshift_warnings INTERFACE)
target_compile_options(pgshift_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
  -Wnull-dereference -Wimplicit-fallthrough)
# GCC 12 at -O2 (the CI build) reports false positives inside inlined Boost.Asio code:
# -Wmismatched-new-delete for awaitable frames (aligned_alloc behind a class operator new,
# freed by the matching class operator delete; proxy/client_auth.cpp) and
# -Wnull-dereference in io_context executor comparisons (proxy/ctl_http.cpp). The latter
# only fires with optimisation, so it is off for GCC altogether.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(pgshift_warnings INTERFACE -Wno-mismatched-new-delete
    -Wno-null-dereference)
endif()
if(PGSHIFT_WERROR)
  target_compile_options(pgshift_warnings INTERFACE -Werror)
endif()
if(PGSHIFT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
