# Warnings for every project target; sanitizers as a build option.
add_library(pgshift_warnings INTERFACE)
target_compile_options(pgshift_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
  -Wnull-dereference -Wimplicit-fallthrough)
# GCC 12 at -O2 reports a false -Wmismatched-new-delete when it inlines Asio's awaitable frame
# allocation (aligned_alloc behind a class operator new) into a coroutine that is destroyed
# through the matching class operator delete (e.g. proxy/client_auth.cpp).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(pgshift_warnings INTERFACE -Wno-mismatched-new-delete)
endif()
if(PGSHIFT_WERROR)
  target_compile_options(pgshift_warnings INTERFACE -Werror)
endif()
if(PGSHIFT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
