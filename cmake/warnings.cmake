# Warnings for every project target; sanitizers as a build option.
add_library(pgshift_warnings INTERFACE)
target_compile_options(pgshift_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
  -Wnull-dereference -Wimplicit-fallthrough)
if(PGSHIFT_WERROR)
  target_compile_options(pgshift_warnings INTERFACE -Werror)
endif()
if(PGSHIFT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
