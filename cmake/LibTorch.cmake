# Finds LibTorch: Debian's 1.13 by default, or the one named by -DCMAKE_PREFIX_PATH (the
# PyPI wheel's `torch.utils.cmake_prefix_path`), and makes sure every library comes from it.
#
# TorchConfig.cmake looks for libtorch.so and libc10.so with find_library(... PATHS
# <prefix>/lib), which searches the system's directories first: with Debian's LibTorch
# installed, the wheel's 2.x headers would be linked against Debian's 1.13 libtorch.so.
# Naming each LibTorch install prefix ahead of the system's makes its own libraries win.
foreach(dir IN LISTS CMAKE_PREFIX_PATH Torch_DIR)
  foreach(config IN ITEMS "${dir}/Torch/TorchConfig.cmake" "${dir}/TorchConfig.cmake")
    if(EXISTS "${config}")
      get_filename_component(config_dir "${config}" DIRECTORY)
      get_filename_component(torch_prefix "${config_dir}/../../.." ABSOLUTE)
      list(PREPEND CMAKE_PREFIX_PATH "${torch_prefix}")
    endif()
  endforeach()
endforeach()

find_package(Torch REQUIRED)
foreach(lib IN ITEMS TORCH_LIBRARY c10_LIBRARY)
  string(FIND "${${lib}}" "${TORCH_INSTALL_PREFIX}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}: ${lib} is ${${lib}}, another LibTorch's. "
                        "Remove the build directory and configure with -DCMAKE_PREFIX_PATH naming one LibTorch.")
  endif()
endforeach()
message(STATUS "LibTorch ${Torch_VERSION}: ${TORCH_LIBRARY}")

# LibTorch's flags (its C++ ABI setting) apply to every target so std::string crosses
# library boundaries safely; formats/ still never links it.
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${TORCH_CXX_FLAGS}")
