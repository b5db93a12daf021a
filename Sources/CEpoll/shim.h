// epoll and eventfd, which Swift's Glibc module does not expose.
#include <sys/epoll.h>
#include <sys/eventfd.h>
