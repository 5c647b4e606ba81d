/* The pod sandbox's process: holds the pod's namespaces open, reaps orphans (it is PID 1 when the pod shares
 * its PID namespace) and exits on SIGINT/SIGTERM. Built static by images.ts (gcc -static), no libc needed in the image. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction stopping = {.sa_handler = stop};
  struct sigaction reaping = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  sigaction(SIGINT, &stopping, NULL);
  sigaction(SIGTERM, &stopping, NULL);
  sigaction(SIGCHLD, &reaping, NULL);
  for (;;) pause();
}
