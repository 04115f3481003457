/* op_object.c - object operations: PutObject, GetObject/HeadObject,
 * DeleteObject, CopyObject, DeleteObjects. (Being written.) */
#include "core/platform.h"
#include "s3/service.h"

static void todo(struct s3req *r)
{
	s3_error(r, 501, "NotImplemented", "Not implemented yet.");
}

void s3op_put_object(struct s3req *r) { todo(r); }
void s3op_copy_object(struct s3req *r) { todo(r); }
void s3op_get_object(struct s3req *r) { todo(r); }
void s3op_delete_object(struct s3req *r) { todo(r); }
void s3op_delete_objects(struct s3req *r) { todo(r); }
