#include "core/platform.h"
#include "core/log.h"

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	log_info("silt", "not yet");
	return 0;
}
